"""Tests of the admission server (`vllm-env-guard serve`)."""
