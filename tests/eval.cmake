# The results database (QtSql only) and the evaluator with the eval/results commands.
phatgoose_test(test_store SOURCES test_store.cpp LIBS phatgoose_store LABELS unit)
phatgoose_test(test_evaluator
    SOURCES test_evaluator.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp
    LIBS phatgoose_cli phatgoose_backend
    LABELS unit)
phatgoose_test(test_workspace
    SOURCES test_workspace.cpp fixtures/tiny_t5.cpp fixtures/random_experts.cpp fixtures/tiny_workspace.cpp
    LIBS phatgoose_backend
    LABELS unit)
phatgoose_test(test_demo SOURCES test_demo.cpp LIBS phatgoose_cli phatgoose_backend LABELS unit demo)
