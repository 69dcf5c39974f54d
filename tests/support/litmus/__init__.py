"""LitmusChaos 3.x for the tests: its CRDs (real or a stand-in) and a simulator of its operator."""
