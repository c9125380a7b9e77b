"""`planner control`: a policy deciding online on live metrics, through the one control loop."""
