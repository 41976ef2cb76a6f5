# Every command through runCli: the logits JSON against the references, route traces, exit codes.
phatgoose_test(test_cli SOURCES test_cli.cpp LIBS phatgoose_cli phatgoose_test_fixtures LABELS unit cli)
# What a kill, a full disk, a signal or a careless command line can and cannot do (README, "Reliability"):
# through the CLI in-process and in child processes, and the expert and workspace writers directly.
phatgoose_test(test_reliability SOURCES test_reliability.cpp LIBS phatgoose_cli phatgoose_test_fixtures
               LABELS unit cli)
