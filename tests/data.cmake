# JSON Lines datasets (phatgoose_data: no LibTorch).
phatgoose_test(test_dataset SOURCES test_dataset.cpp LIBS phatgoose_data LABELS unit)
