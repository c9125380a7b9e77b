"""One Pulumi ComponentResource per unit of the serving stack (network, cluster, ...)."""
