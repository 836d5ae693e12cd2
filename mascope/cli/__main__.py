from mascope.cli import main

main()
