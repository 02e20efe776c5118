// Placeholder: see test_limits.cpp
int main() { return 0; }
