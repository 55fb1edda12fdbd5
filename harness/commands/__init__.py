"""One module per `rdplab` command; each exposes add_parser(subparsers) and run(args) -> int."""
