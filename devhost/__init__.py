"""Local stand-in for the Azure Functions host: serves function_app over HTTP and queues."""
