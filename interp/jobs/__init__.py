"""Batch jobs: resumable whole-model computations that write their results into the store."""
