# Every command through runCli: the logits JSON against the references, route traces, exit codes.
phatgoose_test(test_cli SOURCES test_cli.cpp LIBS phatgoose_cli phatgoose_test_fixtures LABELS unit cli)
