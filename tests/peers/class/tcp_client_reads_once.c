/*
 * Flaw (a client): reads the reply once. One recv() gets whatever has arrived so far, so a reply
 * that comes in several segments, with a pause between them, is printed half (the rest is never
 * read), and a reply longer than 1,023 bytes is cut. A grader playing the server should report
 * "reads once: printed only the first segment" (the fix: recv in a loop until it returns 0, after
 * shutdown(sock, SHUT_WR)). Sound otherwise: it reports a refused connection with perror and exit
 * status 1.
 * Build: gcc -Wall -o tcp_client_reads_once tcp_client_reads_once.c
 * Usage: ./tcp_client_reads_once [PORT]   (default 12000; the server is 127.0.0.1), then type a
 * sentence.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    int port = argc > 1 ? atoi(argv[1]) : 12000;
    char sentence[1024];
    char reply[1024];

    printf("Input lowercase sentence: ");
    fflush(stdout);
    if (fgets(sentence, sizeof(sentence), stdin) == NULL) {
        fprintf(stderr, "no input\n");
        return 1;
    }
    sentence[strcspn(sentence, "\n")] = '\0';

    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in server;
    memset(&server, 0, sizeof(server));
    server.sin_family = AF_INET;
    server.sin_port = htons(port);
    server.sin_addr.s_addr = inet_addr("127.0.0.1");
    if (connect(sock, (struct sockaddr *)&server, sizeof(server)) < 0) {
        perror("connect");
        return 1;
    }
    send(sock, sentence, strlen(sentence), 0);

    int n = recv(sock, reply, sizeof(reply) - 1, 0);
    if (n < 0) {
        perror("recv");
        return 1;
    }
    reply[n] = '\0';
    printf("From Server: %s\n", reply);
    close(sock);
    return 0;
}
