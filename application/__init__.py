"""The application layer: the command line, the web server and the demo, on top of everything."""
