# The evaluator and metrics, with the eval and results commands.
phatgoose_test(test_evaluator SOURCES test_evaluator.cpp LIBS phatgoose_cli phatgoose_test_fixtures LABELS unit)
