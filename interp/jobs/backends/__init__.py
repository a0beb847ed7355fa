"""Where the neuron map's units of work run: `local` (this process) or `ray` (a Ray task per layer).

Each backend imports only the unit (`interp.jobs.neuron_map_unit`); the job
(`interp.jobs.neuron_map`) plans and picks one.
"""
