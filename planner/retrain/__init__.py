"""The retraining job and `planner recommend`: fresh history in, the best policy out.

`inputs` (history and cluster), `candidates` (tuned families), `rl_candidate`,
`scoring`, `decision`, `advice`, `pipeline` (one contest), `job` (store, lock,
promotion), `report` (HTML and JSON), `commands` (the CLI).
"""
