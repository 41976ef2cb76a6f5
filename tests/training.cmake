# The expert and gate trainers and training sessions (recorded runs), through the library and the CLI.
phatgoose_test(test_training SOURCES test_training.cpp LIBS phatgoose_cli phatgoose_test_fixtures LABELS unit)
