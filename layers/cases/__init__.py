"""Case lifecycle (案卷流转, GB/T 30428.8): intake, workflow, timers, dispatch, outputs."""
