"""The model server's pieces: artifact loading, input decoding, micro-batching,
prediction logging, metrics and the ASGI app that speaks KServe v1 and the Open
Inference Protocol v2. `kadence serve` (kadence.workloads.serve) puts them together.
"""
