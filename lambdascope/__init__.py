"""lambdascope: observability and memory right-sizing for fleets of AWS Lambda functions."""

__version__ = "0.1.0"
