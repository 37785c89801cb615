"""Executors other than the built-in local one (:class:`idsbench.runner.LocalExecutor`).

An executor takes the job list, the prepared data and a callback, and calls
``on_result(record, predictions)`` in the driver process as each job finishes; where the jobs
run is its own business.  :func:`idsbench.runner.get_executor` imports them by name, so a
missing optional dependency (Ray) only matters when that executor is asked for.
"""
