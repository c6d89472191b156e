/*
 * Flaw: the last byte is not uppercased. The loop runs to n - 1 (its author was skipping the
 * newline that `nc` sends; the lecture's client sends none), so "hello" comes back "HELLo". A
 * grader should report "last byte not uppercased" (the fix: i < n). Also, as C students write it:
 * toupper per byte (ASCII only: ß and привет come back unchanged), a 2,048-byte buffer (a longer
 * datagram is cut). The reply length is right: n bytes.
 * Build: gcc -Wall -o udp_last_byte udp_last_byte.c
 * Usage: ./udp_last_byte [PORT]   (default 12000)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int port = 12000;
    if (argc > 1)
        port = atoi(argv[1]);

    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (bind(sock, (struct sockaddr *)&addr, sizeof addr) == -1) {
        perror("bind failed");
        exit(EXIT_FAILURE);
    }
    puts("The server is ready to receive");

    char buf[2048];
    while (1) {
        struct sockaddr_in from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(sock, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
        if (n < 0)
            continue;
        for (ssize_t i = 0; i < n - 1; i++)
            buf[i] = toupper((unsigned char)buf[i]);
        sendto(sock, buf, n, 0, (struct sockaddr *)&from, fromlen);
    }
}
