/* provline-eim: placeholder main, replaced below. */
int main(void)
{
    return 0;
}
