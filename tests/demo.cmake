# The demo workspace builder end to end (--quick), and the user's writable copy of the shipped demo (no
# LibTorch).
phatgoose_test(test_demo SOURCES test_demo.cpp LIBS phatgoose_cli phatgoose_backend LABELS unit demo)
phatgoose_test(test_demo_install SOURCES test_demo_install.cpp LIBS phatgoose_demo_install LABELS unit)
