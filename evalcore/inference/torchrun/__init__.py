"""torchrun shards: the plan, the parent side of a launch, the ranks, and what a dead
rank leaves."""
