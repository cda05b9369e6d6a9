/** @file rehomectl.c (not yet written) */
int main(void) { return 2; }
