"""Many pairs at once: the plan cut into shards, a shard's resumable run, the merge back into one
matrix, the timings that balance shards, and the safe upgrade paths read from the result."""
