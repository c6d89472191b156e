/*
 * Flaw: each connection's thread spins forever after the client has finished. The loop only
 * answers when recv() returns more than 0 and never leaves: at EOF recv() returns 0 at once, so
 * the thread goes round as fast as the CPU allows, for the life of the server. After one client
 * the idle server burns a whole core; after two, both cores of a small machine, and the threads
 * pile up (one per connection, never joined). A grader watching it should report CPU spent while
 * idle (spinning after EOF), threads that grow per connection, and "never closes the
 * connection" (the fix: break out of the loop when recv returns 0 or less, and close). Also, as C
 * students write it: toupper per byte (ASCII only), no SO_REUSEADDR.
 * Build: gcc -Wall -pthread -o tcp_spins_at_eof tcp_spins_at_eof.c
 * Usage: ./tcp_spins_at_eof [PORT]   (default 12000)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void *client_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[1024];
    while (1) {
        int n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
            for (int i = 0; i < n; i++)
                buf[i] = toupper(buf[i]);
            send(fd, buf, n, 0);
        }
    }
    return NULL;
}

int main(int argc, char *argv[])
{
    int port = argc > 1 ? atoi(argv[1]) : 12000;
    int server_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = inet_addr("127.0.0.1");
    addr.sin_port = htons(port);
    if (bind(server_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        perror("bind");
        return 1;
    }
    listen(server_fd, 10);
    printf("The server is ready to receive\n");

    while (1) {
        int client_fd = accept(server_fd, NULL, NULL);
        pthread_t tid;
        pthread_create(&tid, NULL, client_thread, (void *)(intptr_t)client_fd);
    }
    return 0;
}
