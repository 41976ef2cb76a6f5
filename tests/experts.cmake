# PEFT adapter folders, gates and expert libraries.
phatgoose_test(test_experts SOURCES test_experts.cpp LIBS phatgoose_test_fixtures LABELS unit)
