"""The benchmark grid runner's library: grid files (:mod:`.spec`) and run state on disk (:mod:`.state`)."""
