"""`deepfit benchmark`: measure.py measures, inputs.py builds the workload, plan.py fits the work
to the time budget, timing.py times steps and latency, memory.py reads peak memory."""
