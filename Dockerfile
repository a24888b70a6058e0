# syntax=docker/dockerfile:1
# CredBroker server image: build with the .NET SDK, run on the chiseled ASP.NET runtime
# (no shell, no package manager, non-root user 1654 — the chart's runAsUser).
#   docker build -t credbroker:0.1.0 .
# tests/CredBroker.Deploy.Tests/DockerfileTests.cs publishes from exactly what this file copies
# and checks the output has what the runtime stage needs.
ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY protos/ protos/
COPY src/ src/
RUN dotnet publish src/CredBroker.Server/CredBroker.Server.csproj -c Release -o /out -p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION}-noble-chiseled AS runtime
WORKDIR /app
COPY --from=build /out/ ./
# The broker binds its own listeners (CredBroker:Listen); no ASP.NET default port, no diagnostics socket.
ENV ASPNETCORE_HTTP_PORTS= \
    DOTNET_EnableDiagnostics=0
USER 1654:1654
EXPOSE 5400 5401 5402
ENTRYPOINT ["dotnet", "CredBroker.Server.dll"]
