"""Per-environment result messages: the documented text, plus what keyops adds when no
gateway node is connected to the environment (issue 5: the message says so)."""

NO_NODES = "no gateway node is connected to this environment"
DEPLOYED = f"Deployed successfully; {NO_NODES}"
UNDEPLOYED = f"Undeployed successfully; {NO_NODES}"
