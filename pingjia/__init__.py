"""The `pingjia` command, on top of every package: the terminal's and the hub's subcommands, and
the simulator's when it is installed (`pip install 'pingjia[sim]'`)."""
