"""Pure decisions: which events become signals (router) and what each lamp shows (reconcile)."""
