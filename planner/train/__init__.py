"""`planner train`: learn a scaling policy with Stable-Baselines3 on real traffic.

`config` holds the values a training run is described by; `learn` trains one
model (one seed) in the Gymnasium env and scores it on the validation window;
`evaluate` scores the learned policy and the baselines on the held-back window
over several seeds; `pipeline` runs the whole thing and writes the bundle;
`commands` is the CLI.
"""
