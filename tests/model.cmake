phatgoose_test(test_t5_reference
    SOURCES test_t5_reference.cpp reference_case.cpp
    LIBS phatgoose_backend
    LABELS unit parity)
phatgoose_test(test_t5_engine
    SOURCES test_t5_engine.cpp fixtures/tiny_t5.cpp
    LIBS phatgoose_backend
    LABELS unit)
phatgoose_test(test_cli
    SOURCES test_cli.cpp reference_case.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp
    LIBS phatgoose_cli
    LABELS unit cli)
