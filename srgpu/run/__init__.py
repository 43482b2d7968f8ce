"""The run: replicate draws, batches, statistics, the store, the summary, the Dask orchestration."""
