/*
 * Flaw: sends the whole buffer. Each reply is send(conn, buffer, sizeof buffer, 0): all 1,024
 * bytes of the buffer, not the n bytes received, so a reply is the uppercased message followed by
 * NUL bytes up to 1,024 (the buffer is zeroed for each client). A grader should report "whole
 * buffer sent: NUL padding to 1,024 bytes" (the fix: send n bytes). Also, as C students write it:
 * one read per connection (a message longer than 1,024 bytes is cut), toupper per byte (ASCII
 * only: ß and привет come back unchanged), one client at a time, no SO_REUSEADDR.
 * Build: gcc -Wall -o tcp_whole_buffer tcp_whole_buffer.c
 * Usage: ./tcp_whole_buffer [PORT]   (default 12000)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_SIZE 1024

int main(int argc, char *argv[])
{
    int port = argc > 1 ? atoi(argv[1]) : 12000;

    int server_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (server_fd < 0) {
        perror("socket");
        exit(1);
    }

    struct sockaddr_in server_addr;
    memset(&server_addr, 0, sizeof(server_addr));
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons(port);
    server_addr.sin_addr.s_addr = inet_addr("127.0.0.1");

    if (bind(server_fd, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0) {
        perror("bind");
        exit(1);
    }
    if (listen(server_fd, 5) < 0) {
        perror("listen");
        exit(1);
    }
    printf("The server is ready to receive\n");

    while (1) {
        int conn_fd = accept(server_fd, NULL, NULL);
        if (conn_fd < 0) {
            perror("accept");
            continue;
        }
        char buffer[BUFFER_SIZE] = {0};
        int n = read(conn_fd, buffer, BUFFER_SIZE);
        for (int i = 0; i < n; i++) {
            buffer[i] = toupper(buffer[i]);
        }
        send(conn_fd, buffer, sizeof(buffer), 0);
        close(conn_fd);
    }
    return 0;
}
