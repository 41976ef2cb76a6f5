phatgoose_test(test_experts
    SOURCES test_experts.cpp fixtures/tiny_t5.cpp
    LIBS phatgoose_backend
    LABELS unit)
