"""The SSM API actions moto lacks or cannot answer, served over HTTP by the middleware: the
Automation actions and documents, and managed instances with their command invocations."""
