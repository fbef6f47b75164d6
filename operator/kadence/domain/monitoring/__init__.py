"""Monitoring, pure: prediction-log format, drift, quality metrics, breach and retrain policy.

Nothing here touches the network, the object store or Kubernetes; the monitor
workload (`kadence.workloads.monitor`) and the MonitorPolicy planner call it.
"""
