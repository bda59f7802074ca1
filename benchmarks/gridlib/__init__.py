"""The grid runner's library: grid files (:mod:`.spec`), run state on disk (:mod:`.state`) and the
training loop with its per-run locks (:mod:`.runner`)."""
