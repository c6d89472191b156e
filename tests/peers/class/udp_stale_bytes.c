/*
 * Flaw: stale bytes from an earlier, longer request. The buffer is zeroed once, at start, and
 * each reply is strlen(buffer) long instead of the n bytes received: recvfrom does not add a NUL,
 * so after "hello world" a request "hi" comes back "HILLO WORLD". A grader should report "whole
 * buffer sent: stale bytes of an earlier request" (the fix: use n, the length recvfrom returned).
 * A message with a NUL byte in it is cut there for the same reason. Also, as C students write it:
 * toupper per byte (ASCII only: ß and привет come back unchanged), a 2,048-byte buffer (a longer
 * datagram is cut).
 * Build: gcc -Wall -o udp_stale_bytes udp_stale_bytes.c
 * Usage: ./udp_stale_bytes [PORT]   (default 12000)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_SIZE 2048

char buffer[BUFFER_SIZE + 1];

int main(int argc, char *argv[])
{
    int port = argc > 1 ? atoi(argv[1]) : 12000;

    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    if (sock < 0) {
        perror("socket");
        return 1;
    }
    struct sockaddr_in server_addr;
    memset(&server_addr, 0, sizeof(server_addr));
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons(port);
    server_addr.sin_addr.s_addr = inet_addr("127.0.0.1");
    if (bind(sock, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0) {
        perror("bind");
        return 1;
    }
    memset(buffer, 0, sizeof(buffer));
    printf("The server is ready to receive\n");

    for (;;) {
        struct sockaddr_in client_addr;
        socklen_t client_len = sizeof(client_addr);
        int n = recvfrom(sock, buffer, BUFFER_SIZE, 0, (struct sockaddr *)&client_addr, &client_len);
        if (n < 0) {
            perror("recvfrom");
            continue;
        }
        for (int i = 0; buffer[i] != '\0'; i++) {
            buffer[i] = toupper(buffer[i]);
        }
        sendto(sock, buffer, strlen(buffer), 0, (struct sockaddr *)&client_addr, client_len);
    }
}
