/*
 * Flaw: a child process per connection that is never reaped. The parent forks for each client and
 * never calls wait() (nor ignores SIGCHLD), so every finished child stays a zombie (state Z in
 * /proc) until the server exits. A grader watching it should report zombies that grow by one per
 * connection (the fix: signal(SIGCHLD, SIG_IGN), or waitpid(-1, NULL, WNOHANG) in a loop). Also,
 * as C students write it: toupper per byte (ASCII only), no SO_REUSEADDR. Otherwise sound: each
 * piece is answered as it arrives, and the child closes when the client has finished.
 * Build: gcc -Wall -o tcp_zombies tcp_zombies.c
 * Usage: ./tcp_zombies [PORT]   (default 12000)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void handle_client(int client)
{
    char buffer[1024];
    int n;
    while ((n = read(client, buffer, sizeof(buffer))) > 0) {
        for (int i = 0; i < n; i++)
            buffer[i] = toupper((unsigned char)buffer[i]);
        write(client, buffer, n);
    }
    close(client);
}

int main(int argc, char *argv[])
{
    int port = 12000;
    if (argc > 1)
        port = atoi(argv[1]);

    int server = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address;
    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = inet_addr("127.0.0.1");
    address.sin_port = htons(port);
    if (bind(server, (struct sockaddr *)&address, sizeof(address)) < 0) {
        perror("bind");
        exit(1);
    }
    listen(server, 10);
    printf("The server is ready to receive\n");

    while (1) {
        int client = accept(server, NULL, NULL);
        if (client < 0)
            continue;
        if (fork() == 0) {
            close(server);
            handle_client(client);
            exit(0);
        }
        close(client);
    }
}
