"""The `pekit` sub-commands: one module each, named after it (`gpu-check` is gpu_check.py).

Each holds `register(subparsers)`, which adds the command with `set_defaults(func=...)`, and the
argparse glue of `func(args)`: the arguments mapped onto the stage's functions, and what is
printed. The work itself is done in the stage packages below.
"""
