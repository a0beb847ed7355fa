"""Where a job's units run (`interp.jobs.units`): `local` (this process) or `ray` (a Ray task per unit).

The local backend also holds the neuron map's overlapped runner (`local.run_local`), which
imports only the neuron map's unit (`interp.jobs.neuron_map_unit`).
"""
