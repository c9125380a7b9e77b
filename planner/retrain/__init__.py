"""The scheduled retraining job: fresh metrics in, the best policy for them out, or the champion kept."""
