# Datasets (no LibTorch in the test itself) and the expert and gate trainers, library and CLI.
phatgoose_test(test_dataset SOURCES test_dataset.cpp LIBS phatgoose_eval LABELS unit)
phatgoose_test(test_training
    SOURCES test_training.cpp fixtures/tiny_t5.cpp
    LIBS phatgoose_cli phatgoose_backend
    LABELS unit)
