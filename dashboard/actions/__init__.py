"""Writes to Stigg that a person asks for: check the input, call Stigg with a short
timeout, record an audit row (done only when Stigg accepted), queue a refresh of the
customer. Plain functions, testable without HTTP; the views only ask and render."""
