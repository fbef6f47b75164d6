"""Training, pure of Kubernetes: model families and their search spaces, the search
strategies, metrics, hold-out evaluation, the artifact format, the promotion policy
and version allocation."""
