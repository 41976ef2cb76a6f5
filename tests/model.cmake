phatgoose_test(test_t5_reference
    SOURCES test_t5_reference.cpp reference_case.cpp
    LIBS phatgoose_backend
    LABELS unit parity)
phatgoose_test(test_t5_engine
    SOURCES test_t5_engine.cpp fixtures/tiny_t5.cpp
    LIBS phatgoose_backend
    LABELS unit)
