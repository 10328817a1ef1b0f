#include <stdio.h>

int main(void) {
    puts("hello from a recorded build");
    return 0;
}
