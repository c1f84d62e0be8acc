"""The host backend of every terminal driver: broker, fleets of terminals, customers, faults, benchmarks."""
